// placeholder until the target's sources land
