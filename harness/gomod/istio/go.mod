module bgh.local/wrap/istio

go 1.26.0

require istio.io/api v1.30.3
