// Wrapper module: builds Flux's source-controller and kustomize-controller, only for
// side-by-side comparisons with Ferry (scripts/compare-flux.sh); not built in CI.
module ferry.dev/testbed/flux-source

go 1.26.0

require (
	github.com/fluxcd/kustomize-controller v1.9.5
	github.com/fluxcd/source-controller v1.9.5
)

// The controllers' own go.mod files point their api modules at ./api; use the published ones.
replace (
	github.com/fluxcd/kustomize-controller/api => github.com/fluxcd/kustomize-controller/api v1.9.5
	github.com/fluxcd/source-controller/api => github.com/fluxcd/source-controller/api v1.9.5
)

// Carried over from both controllers' go.mod (BLAKE3 digests).
replace github.com/opencontainers/go-digest => github.com/opencontainers/go-digest v1.0.1-0.20220411205349-bde1400a84be
