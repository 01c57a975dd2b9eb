"""Control: paths, drift equilibria and the reference, the drift MPC, the closed loop on the
plant."""
