"""Thin Qt views over the app's item models and the sdk."""
