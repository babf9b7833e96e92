//go:build tools

// Package tools pins the programs this wrapper builds.
package tools

import (
	_ "github.com/fluxcd/image-automation-controller"
	_ "github.com/fluxcd/image-reflector-controller"
)
