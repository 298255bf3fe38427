package contract_test

import (
	"testing"

	"github.com/collabd/collabd/auth"
	"github.com/collabd/collabd/internal/contract"
)

// TestAuthUserNameLimit: with auth on, a token's user name is the name the
// other editors see, so package auth (a leaf that keeps its own bound)
// must allow exactly the contract's names.
func TestAuthUserNameLimit(t *testing.T) {
	if auth.MaxUser != contract.MaxUserNameRunes {
		t.Fatalf("auth.MaxUser = %d code points, contract.MaxUserNameRunes = %d", auth.MaxUser, contract.MaxUserNameRunes)
	}
}
