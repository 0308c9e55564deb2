"""End-to-end pipelines: the offline demo and the ablation (search + retrain + report)."""
