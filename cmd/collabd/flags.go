package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// envPrefix starts the environment variable of every flag:
// --max-doc-bytes is COLLABD_MAX_DOC_BYTES.
const envPrefix = "COLLABD_"

// envName returns the environment variable of flag name.
func envName(name string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// parseFlags parses args into fs, allowing flags after positional
// arguments ("history DOC --limit 5"), then fills every flag named in env
// (all of fs's flags when env is nil) that the command line did not set
// from its environment variable: a flag wins over the environment. It
// returns the positional arguments. A command line the flag package refuses
// gives errUsage (the flag package has printed why); a bad environment value
// gives an error naming the variable.
func parseFlags(fs *flag.FlagSet, args []string, env []string, getenv func(string) string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, errUsage
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		if args[0] == "--" {
			pos = append(pos, args[1:]...)
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	names := env
	if names == nil {
		fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	}
	for _, name := range names {
		if set[name] || fs.Lookup(name) == nil || set[alternative[name]] {
			continue
		}
		v := getenv(envName(name))
		if v == "" {
			continue
		}
		if err := fs.Set(name, v); err != nil {
			return nil, fmt.Errorf("%s=%q: %w", envName(name), v, err)
		}
	}
	return pos, nil
}

// alternative pairs flags that give the same setting two ways: one given on
// the command line also overrides the other's environment variable.
var alternative = map[string]string{
	"auth-secret":      "auth-secret-file",
	"auth-secret-file": "auth-secret",
}

// listFlag is a repeatable flag whose values may also be comma-separated.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

// newFlagSet returns a flag set for a command that reports errors itself.
func newFlagSet(name string, stderr io.Writer, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: %s\n\nflags (each also from the environment variable %sFLAG_NAME):\n", usage, envPrefix)
		fs.PrintDefaults()
	}
	return fs
}

// secretFrom returns the auth secret of --auth-secret or --auth-secret-file
// ("" when neither is set).
func secretFrom(secret, file string) (string, error) {
	if secret != "" && file != "" {
		return "", errors.New("--auth-secret and --auth-secret-file are exclusive")
	}
	if file == "" {
		return secret, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("--auth-secret-file: %w", err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("--auth-secret-file %s is empty", file)
	}
	return s, nil
}
