"""Shunt's scenarios, their runner, the results store, the dashboard and the regression gate
(importable as shunt.scenarios from the build tree: docs/scenarios.md)."""
