"""Thin update handlers: parse, call the manager, render with views, reply."""
