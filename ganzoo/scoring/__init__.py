"""Scoring translated images: the metric set of ``ganzoo eval`` and in-training validation
(:mod:`~ganzoo.scoring.metric_set`), the LPIPS / DISTS networks
(:mod:`~ganzoo.scoring.perceptual`) and the Inception distances FID / KID
(:mod:`~ganzoo.scoring.fid`). Below training and evaluation, so that both score the same way
and training never imports evaluation."""
