//! A small fully connected network on the UCI 8×8 digits: the real-network check of the
//! paper's Figs. 1, 2(b), 3(b) (Hessian spectrum, C–H alignment, flatness dynamics).
//! Owned by the network work (issue 6).
