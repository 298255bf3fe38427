// Package jsonx holds the two hand-written JSON pieces of collabd's hot
// paths (every Socket.IO packet, every keystroke): Scanner, which validates
// and skips JSON values accepting exactly what encoding/json accepts, and
// AppendString, which writes a string as encoding/json does without HTML
// escaping. Both avoid encoding/json's reflection and allocations; the fuzz
// targets hold them to encoding/json's behaviour.
//
// A Scanner is used by one goroutine at a time; AppendString is a pure
// function.
package jsonx
