"""Helpers shared by the component and cluster tests: demo services and Prometheus on loopback."""
