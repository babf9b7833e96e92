//go:build tools

// Package tools pins the programs this wrapper builds.
package tools

import _ "github.com/fluxcd/flux2/v2/cmd/flux"
