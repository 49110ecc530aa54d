"""Unlearning methods: one small LightningModule per method over `base.UnlearningModule`."""
