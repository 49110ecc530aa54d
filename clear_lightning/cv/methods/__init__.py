"""CV unlearning methods: one LightningModule per method, built from conf/cv/method/<name>.yaml."""
