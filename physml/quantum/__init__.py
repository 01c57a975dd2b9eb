"""physml.quantum: autoregressive neural quantum states and variational Monte Carlo.

Sharir, Levine, Wies, Carleo, Shashua, "Deep autoregressive models for the efficient variational
simulation of many-body quantum systems", PRL 124, 020503 (2020). Conventions (Pauli units, signs,
local states) are in `physml.quantum._hamiltonians`; every wave function is an
`AbstractSpinState`, which is all that VMC (`check_compatible`, `VMCObjective`, `ground_state`)
relies on.
"""

from ._arconv import ARConv1D as ARConv1D
from ._arconv2d import ARConv2D as ARConv2D, lattice_shape as lattice_shape
from ._collapse import collapsed_batch as collapsed_batch
from ._constraints import FixedMagnetization as FixedMagnetization
from ._exact import exact_energy as exact_energy, tfim_chain_energy as tfim_chain_energy
from ._ground_state import (
    evaluate_energy as evaluate_energy,
    full_sum_energy as full_sum_energy,
    ground_state as ground_state,
)
from ._hamiltonians import (
    chain as chain,
    heisenberg as heisenberg,
    pauli_to_spin_half as pauli_to_spin_half,
    spin_half_to_pauli as spin_half_to_pauli,
    tfim as tfim,
)
from ._lattice2d import (
    heisenberg_2d as heisenberg_2d,
    marshall_sign as marshall_sign,
    square_lattice as square_lattice,
    tfim_2d as tfim_2d,
)
from ._observables import (
    correlations as correlations,
    magnetization as magnetization,
    sample_spins as sample_spins,
)
from ._result import Result as Result, v_score as v_score
from ._sr import SR as SR
from ._symmetry import (
    Symmetrized as Symmetrized,
    check_group as check_group,
    lattice_group as lattice_group,
)
from ._transfer import ReceptiveFieldError as ReceptiveFieldError, transfer as transfer
from ._vmc import (
    VMCObjective as VMCObjective,
    check_compatible as check_compatible,
    draw_samples as draw_samples,
    local_energies as local_energies,
)
from ._wavefunction import (
    AbstractAutoregressiveSpinState as AbstractAutoregressiveSpinState,
    AbstractSpinState as AbstractSpinState,
    AbstractTwoStateNetwork as AbstractTwoStateNetwork,
)
