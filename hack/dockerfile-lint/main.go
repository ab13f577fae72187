// dockerfile-lint checks Dockerfiles with buildkit's linter (the checks of `docker build
// --check`) and exits 1 when any rule fires, 2 when a file cannot be parsed.
//
//	dockerfile-lint FILE...
package main

import (
	"fmt"
	"os"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

func lint(path string) (int, error) {
	file, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer file.Close()
	result, err := parser.Parse(file)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	for _, warning := range result.Warnings {
		line := 0
		if warning.Location != nil {
			line = warning.Location.Start.Line
		}
		fmt.Printf("%s:%d: %s\n", path, line, warning.Short)
	}
	found := len(result.Warnings)
	config := &linter.Config{
		Warn: func(rule, description, url, message string, location []parser.Range) {
			found++
			line := 0
			if len(location) > 0 {
				line = location[0].Start.Line
			}
			fmt.Printf("%s:%d: %s: %s (%s)\n", path, line, rule, message, url)
		},
	}
	if _, _, err := instructions.Parse(result.AST, linter.New(config)); err != nil {
		return found, fmt.Errorf("%s: %w", path, err)
	}
	return found, nil
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: dockerfile-lint FILE...")
		os.Exit(2)
	}
	total := 0
	for _, path := range os.Args[1:] {
		found, err := lint(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		total += found
	}
	if total > 0 {
		os.Exit(1)
	}
	fmt.Printf("%d Dockerfile(s): no lint findings\n", len(os.Args)-1)
}
