"""The demo world of `hub demo` (assembly, beside `hub/`): the merchants, members, rates and
rewards of the contract's demo, the sandbox partners it starts, a week of settled history,
tiers, credit, green points and vouchers. `hub/` never imports it; the CLI does."""
