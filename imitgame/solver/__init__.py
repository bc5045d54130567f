"""The min-max solver: one regret estimator, rollouts, stabilizer, destabilizer, objective,
the GDA trainer, exploitability and the forward solver."""
