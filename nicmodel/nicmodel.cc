// Registration of the simulated NIC's device kinds (filled in with the model).
