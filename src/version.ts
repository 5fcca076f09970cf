/** Reported in the handshake and by `tsync --version`. */
export const tsyncVersion = "0.1.0";
