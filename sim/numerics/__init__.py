"""Whole-model numerics: a real network's forward pass with its GEMMs on peforge's golden arithmetic."""
