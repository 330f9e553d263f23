"""Test harness shared by the e2e tests and benchmarks: ports, webhook server, daemon, SIPp."""
