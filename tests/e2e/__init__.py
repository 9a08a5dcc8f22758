"""End-to-end tier: the rendered stack run with podman kube play."""
