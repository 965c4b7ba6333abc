;; echo-http: the reference example skill's module, written against the reference
;; host-capability ABI (palyra:plugins/host-capabilities@0.1.0) so it runs unchanged on the
;; original runtime. `run` returns how many HTTP hosts the sandbox granted: 1 when the
;; operator's policy allows api.example.com, 0 when it does not.
(module
  (import "palyra:plugins/host-capabilities@0.1.0" "http-count" (func $http_count (result i32)))
  (import "palyra:plugins/host-capabilities@0.1.0" "secret-count" (func $secret_count (result i32)))
  (memory (export "memory") 1)
  (func (export "run") (result i32)
    call $http_count))
