"""The embedded local stack: OSS and DashScope emulators and a local FC runner (development only)."""
