"""Command-line interface: `nas-recon <command>`."""
