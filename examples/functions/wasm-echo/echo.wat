;; A WASI command that answers {"echo": <event>}: it reads the JSON event from stdin and
;; writes the prefix, the event and the suffix to stdout.
;; Rebuild echo.wasm with ./build.sh (uses wasmtime.wat2wasm; no network, no toolchain).
(module
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  ;; 0..8 read iovec, 8..12 bytes read/written, 16.. prefix, 32 suffix, 40..48 write iovec,
  ;; 1024..131072 the event
  (data (i32.const 16) "{\"echo\":")
  (data (i32.const 32) "}")
  (func (export "_start")
    (local $len i32)
    (local $n i32)
    (block $done
      (loop $read
        (i32.store (i32.const 0) (i32.add (i32.const 1024) (local.get $len)))
        (i32.store (i32.const 4) (i32.sub (i32.const 130048) (local.get $len)))
        (br_if $done (i32.ne (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)) (i32.const 0)))
        (local.set $n (i32.load (i32.const 8)))
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $len (i32.add (local.get $len) (local.get $n)))
        (br $read)))
    (call $write_all (i32.const 16) (i32.const 8))
    (call $write_all (i32.const 1024) (local.get $len))
    (call $write_all (i32.const 32) (i32.const 1)))
  ;; fd_write may write less than asked: loop until the whole range is out
  (func $write_all (param $ptr i32) (param $len i32)
    (block $done
      (loop $more
        (br_if $done (i32.le_s (local.get $len) (i32.const 0)))
        (i32.store (i32.const 40) (local.get $ptr))
        (i32.store (i32.const 44) (local.get $len))
        (br_if $done (i32.ne (call $fd_write (i32.const 1) (i32.const 40) (i32.const 1) (i32.const 8)) (i32.const 0)))
        (local.set $ptr (i32.add (local.get $ptr) (i32.load (i32.const 8))))
        (local.set $len (i32.sub (local.get $len) (i32.load (i32.const 8))))
        (br $more)))))
