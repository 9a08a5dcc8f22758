"""Entry point of the source-based plugin: serve the hardened-k8s components (see PulumiPlugin.yaml)."""

from hardened_k8s.provider import main

if __name__ == "__main__":
    main()
