// promql-check parses PromQL expressions with Prometheus' own parser and reports those it
// refuses. It reads a JSON list of strings on stdin; Grafana's variables ($job, $__range...)
// must already be replaced. Exit status 1 when any expression is refused.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/prometheus/prometheus/promql/parser"
)

func main() {
	var exprs []string
	if err := json.NewDecoder(os.Stdin).Decode(&exprs); err != nil {
		fmt.Fprintf(os.Stderr, "promql-check: stdin is not a JSON list of strings: %v\n", err)
		os.Exit(2)
	}
	p := parser.NewParser(parser.Options{})
	refused := 0
	for _, expr := range exprs {
		if _, err := p.ParseExpr(expr); err != nil {
			refused++
			fmt.Printf("%v\n  in: %s\n", err, expr)
		}
	}
	fmt.Printf("%d expressions, %d refused\n", len(exprs), refused)
	if refused > 0 {
		os.Exit(1)
	}
}
