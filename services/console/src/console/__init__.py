"""The operators' web console: the live platform on one page (docs/console.md)."""
