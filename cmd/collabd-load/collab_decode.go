//go:build linux

package main

import (
	"bytes"
	"errors"
	"strconv"
	"unicode/utf8"

	"github.com/collabd/collabd/internal/jsonx"
	"github.com/collabd/collabd/ot"
)

// The load program receives a broadcast per op and editor, and decoding them
// with encoding/json took a third of its CPU, which it then takes from the
// server it measures on the same machine. decodeRecord and decodeOpAck read
// the common shapes directly and fall back to encoding/json for anything
// else (escapes in the fields they keep, unexpected types).

var errSlowPath = errors.New("collabd-load: not the fast shape")

// decodeRecord decodes the first argument of a doc:op broadcast.
func decodeRecord(args []byte) (recordMsg, error) {
	if m, err := fastRecord(args); err == nil {
		return m, nil
	}
	var m recordMsg
	if err := firstArg(args, &m); err != nil {
		return recordMsg{}, err
	}
	return m, nil
}

// decodeOpAck decodes the first argument of a doc:op ack.
func decodeOpAck(args []byte) (ackMsg, error) {
	if a, err := fastOpAck(args); err == nil {
		return a, nil
	}
	var a ackMsg
	if err := firstArg(args, &a); err != nil {
		return ackMsg{}, err
	}
	return a, nil
}

func fastRecord(args []byte) (recordMsg, error) {
	var m recordMsg
	err := walkFirstObject(args, func(key []byte, val []byte) error {
		var err error
		switch string(key) {
		case "doc":
			m.Doc, err = plainString(val)
		case "client":
			m.Client, err = plainString(val)
		case "rev":
			m.Rev, err = strconv.ParseUint(string(val), 10, 64)
		case "seq":
			m.Seq, err = strconv.ParseUint(string(val), 10, 64)
		case "op":
			m.Op, err = ot.Parse(val)
		default:
			// encoding/json matches field names case-insensitively
			for _, k := range []string{"doc", "client", "rev", "seq", "op"} {
				if bytes.EqualFold(key, []byte(k)) {
					return errSlowPath
				}
			}
		}
		if err != nil {
			return errSlowPath
		}
		return nil
	})
	return m, err
}

func fastOpAck(args []byte) (ackMsg, error) {
	var a ackMsg
	err := walkFirstObject(args, func(key []byte, val []byte) error {
		var err error
		switch string(key) {
		case "ok":
			if string(val) != "true" {
				return errSlowPath // false (with an error object), or a bad type
			}
			a.OK = true
		case "rev":
			a.Rev, err = strconv.ParseUint(string(val), 10, 64)
		default:
			return errSlowPath
		}
		if err != nil {
			return errSlowPath
		}
		return nil
	})
	if err == nil && !a.OK {
		err = errSlowPath
	}
	return a, err
}

// plainString returns the body of a JSON string without escapes.
func plainString(val []byte) (string, error) {
	if len(val) < 2 || val[0] != '"' || bytes.IndexByte(val, '\\') >= 0 || !utf8.Valid(val) {
		return "", errSlowPath
	}
	return string(val[1 : len(val)-1]), nil
}

// walkFirstObject calls fn with each key and raw value of the object that is
// the first element of the JSON array args, then checks that the rest of
// args is well-formed. It handles the compact JSON the server writes: any
// whitespace, escaped key or malformed value is errSlowPath.
func walkFirstObject(args []byte, fn func(key, val []byte) error) error {
	if len(args) < 2 || args[0] != '[' || args[1] != '{' {
		return errSlowPath
	}
	i := 2
	if i < len(args) && args[i] == '}' {
		i++
	} else {
		for {
			// key
			if i >= len(args) || args[i] != '"' {
				return errSlowPath
			}
			n, err := skipValue(args[i:])
			if err != nil {
				return err
			}
			key := args[i+1 : i+n-1]
			if bytes.IndexByte(key, '\\') >= 0 {
				return errSlowPath
			}
			i += n
			if i >= len(args) || args[i] != ':' {
				return errSlowPath
			}
			i++
			n, err = skipValue(args[i:])
			if err != nil {
				return err
			}
			if err := fn(key, args[i:i+n]); err != nil {
				return err
			}
			i += n
			if i >= len(args) {
				return errSlowPath
			}
			if args[i] == '}' {
				i++
				break
			}
			if args[i] != ',' {
				return errSlowPath
			}
			i++
		}
	}
	// after the object: more arguments, then the end of the array
	for i < len(args) && args[i] == ',' {
		n, err := skipValue(args[i+1:])
		if err != nil {
			return err
		}
		i += 1 + n
	}
	if i != len(args)-1 || args[i] != ']' {
		return errSlowPath
	}
	return nil
}

// skipValue returns the length of the JSON value at the start of b (no
// leading whitespace); anything encoding/json would reject is errSlowPath.
func skipValue(b []byte) (int, error) {
	s := jsonx.Scanner{Data: b}
	if !s.Value() {
		return 0, errSlowPath
	}
	return s.I, nil
}
