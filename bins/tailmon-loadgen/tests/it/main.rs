//! Integration tests of the `tailmon-loadgen` binary: the real executable
//! against a real server run in-process on 127.0.0.1.

mod load_run;
