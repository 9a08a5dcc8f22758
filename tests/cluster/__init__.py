"""The cluster tier: real Pulumi CLI and providers against a local control plane."""
