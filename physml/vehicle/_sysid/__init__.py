"""System identification: MAP fit through the shared loop, force-estimate initialisation,
Bayesian fit, metrics."""
