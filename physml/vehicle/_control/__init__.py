"""Control: paths, drift equilibria, the quasi-equilibrium reference, the MPC's problem, its
box-constrained Gauss–Newton solver, the controller (`DriftMPC`), the closed loop on the plant."""
