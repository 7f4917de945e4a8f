// The preload library: placeholder until the interposer lands.
