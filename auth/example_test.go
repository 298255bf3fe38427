package auth_test

import (
	"fmt"
	"time"

	"github.com/collabd/collabd/auth"
)

func Example() {
	a, err := auth.New([]byte("a secret of at least sixteen bytes"))
	if err != nil {
		panic(err)
	}
	token, err := a.Mint(auth.Claims{
		User:    "ann",
		Edit:    []string{"team-*"},
		View:    []string{"*"},
		Expires: time.Now().Add(time.Hour),
	})
	if err != nil {
		panic(err)
	}
	// The server side: verify the token of a connection or request, then
	// ask what it allows per document.
	c, err := a.Verify(token)
	if err != nil {
		panic(err)
	}
	fmt.Println(c.User, c.Level("team-notes"), c.Level("roadmap"))

	_, err = a.Verify(token + "x")
	fmt.Println(err)
	// Output:
	// ann edit view
	// auth: invalid token: bad signature
}
