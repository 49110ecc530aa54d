"""Model construction (tiny, config-built LLaVA) and loading through `from_pretrained`."""
