"""The independent plant: CommonRoad's drift model in JAX, its tyres, parameters, actuators,
sensors and valid range."""
