"""Test harness for gatewayd's integration tests: real components, started and stopped here."""
