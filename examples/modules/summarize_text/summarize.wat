;; summarize_text: an extractive summarizer as a WASI command (JSON on stdin, JSON on stdout).
;;
;; Input  {"text": "...", "max_sentences": N}   (N defaults to 3, at most 256)
;; Output {"summary": "...", "sentences": [i, ...], "count": n}
;;
;; Sentences end at . ! or ?. Words are runs of ASCII letters, case-folded; words of 4 letters
;; or more are counted in a 4096-slot hash table (FNV-1a). A sentence scores the sum of its
;; words' counts per word (x1000); the N best sentences are returned in their original order.
;; The text is worked on in its JSON-escaped form, so the chosen sentences are copied to the
;; output as they came (escapes stay escapes). Built by `make modules` (wasmtime's wat2wasm).
(module
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 48)
  (global $IN i32 (i32.const 1024))
  (global $INCAP i32 (i32.const 1048576))
  (global $COUNTS i32 (i32.const 0x110000))
  (global $SSTART i32 (i32.const 0x114000))
  (global $SEND i32 (i32.const 0x114400))
  (global $SSCORE i32 (i32.const 0x114800))
  (global $SPICK i32 (i32.const 0x114C00))
  (global $OUT i32 (i32.const 0x120000))
  (global $olen (mut i32) (i32.const 0))
  (global $inlen (mut i32) (i32.const 0))
  (data (i32.const 256) "\22text\22")
  (data (i32.const 272) "\22max_sentences\22")
  (data (i32.const 320) "{\22summary\22:\22")
  (data (i32.const 352) "\22,\22sentences\22:[")
  (data (i32.const 384) "],\22count\22:")

  (func $byte (param $i i32) (result i32)
    (if (result i32) (i32.lt_u (local.get $i) (global.get $inlen))
      (then (i32.load8_u (i32.add (global.get $IN) (local.get $i))))
      (else (i32.const 0))))

  (func $read_all
    (local $n i32)
    (block $done
      (loop $more
        (i32.store (i32.const 0) (i32.add (global.get $IN) (global.get $inlen)))
        (i32.store (i32.const 4) (i32.sub (global.get $INCAP) (global.get $inlen)))
        (br_if $done (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
        (local.set $n (i32.load (i32.const 8)))
        (br_if $done (i32.eqz (local.get $n)))
        (global.set $inlen (i32.add (global.get $inlen) (local.get $n)))
        (br_if $more (i32.lt_u (global.get $inlen) (global.get $INCAP))))))

  ;; the index just after the first occurrence of the pattern, or -1
  (func $find (param $pat i32) (param $plen i32) (result i32)
    (local $i i32) (local $j i32)
    (block $nf
      (loop $scan
        (br_if $nf (i32.gt_u (i32.add (local.get $i) (local.get $plen)) (global.get $inlen)))
        (local.set $j (i32.const 0))
        (block $miss
          (loop $cmp
            (br_if $miss (i32.ne (call $byte (i32.add (local.get $i) (local.get $j)))
                                 (i32.load8_u (i32.add (local.get $pat) (local.get $j)))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br_if $cmp (i32.lt_u (local.get $j) (local.get $plen))))
          (return (i32.add (local.get $i) (local.get $plen))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $scan)))
    (i32.const -1))

  (func $skip_sep (param $i i32) (result i32)
    (local $c i32)
    (block $done
      (loop $l
        (local.set $c (call $byte (local.get $i)))
        (br_if $done (i32.eqz
          (i32.or (i32.or (i32.eq (local.get $c) (i32.const 32)) (i32.eq (local.get $c) (i32.const 58)))
                  (i32.or (i32.eq (local.get $c) (i32.const 10))
                          (i32.or (i32.eq (local.get $c) (i32.const 9)) (i32.eq (local.get $c) (i32.const 13)))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $l)))
    (local.get $i))

  (func $alpha (param $c i32) (result i32)
    (local.set $c (i32.or (local.get $c) (i32.const 32)))
    (i32.and (i32.ge_u (local.get $c) (i32.const 97)) (i32.le_u (local.get $c) (i32.const 122))))

  ;; how far an escape sequence at $i reaches (\uXXXX: 6, others 2)
  (func $esc (param $i i32) (result i32)
    (if (result i32) (i32.eq (call $byte (i32.add (local.get $i) (i32.const 1))) (i32.const 117))
      (then (i32.const 6)) (else (i32.const 2))))

  ;; count words (mode 0) or score the range (mode 1: sum of counts x1000 / (words + 1))
  (func $words (param $s i32) (param $e i32) (param $mode i32) (result i32)
    (local $i i32) (local $c i32) (local $h i32) (local $len i32) (local $sum i32) (local $nw i32) (local $slot i32)
    (local.set $i (local.get $s))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $i) (local.get $e)))
        (local.set $c (call $byte (local.get $i)))
        (if (i32.eq (local.get $c) (i32.const 92))
          (then (local.set $i (i32.add (local.get $i) (call $esc (local.get $i)))) (br $l)))
        (if (call $alpha (local.get $c))
          (then
            (local.set $h (i32.const 0x811c9dc5))
            (local.set $len (i32.const 0))
            (block $wend
              (loop $w
                (br_if $wend (i32.ge_u (local.get $i) (local.get $e)))
                (local.set $c (call $byte (local.get $i)))
                (br_if $wend (i32.eqz (call $alpha (local.get $c))))
                (local.set $h (i32.mul (i32.xor (local.get $h) (i32.or (local.get $c) (i32.const 32))) (i32.const 16777619)))
                (local.set $len (i32.add (local.get $len) (i32.const 1)))
                (local.set $i (i32.add (local.get $i) (i32.const 1)))
                (br $w)))
            (local.set $nw (i32.add (local.get $nw) (i32.const 1)))
            (if (i32.ge_u (local.get $len) (i32.const 4))
              (then
                (local.set $slot (i32.add (global.get $COUNTS) (i32.shl (i32.and (local.get $h) (i32.const 4095)) (i32.const 2))))
                (if (local.get $mode)
                  (then (local.set $sum (i32.add (local.get $sum) (i32.load (local.get $slot)))))
                  (else (i32.store (local.get $slot) (i32.add (i32.load (local.get $slot)) (i32.const 1)))))))
            (br $l)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $l)))
    (i32.div_u (i32.mul (local.get $sum) (i32.const 1000)) (i32.add (local.get $nw) (i32.const 1))))

  (func $emit (param $c i32)
    (i32.store8 (i32.add (global.get $OUT) (global.get $olen)) (local.get $c))
    (global.set $olen (i32.add (global.get $olen) (i32.const 1))))

  (func $emit_range (param $s i32) (param $e i32)
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $s) (local.get $e)))
        (call $emit (call $byte (local.get $s)))
        (local.set $s (i32.add (local.get $s) (i32.const 1)))
        (br $l))))

  (func $emit_num (param $n i32)
    (local $p i32)
    (local.set $p (i32.const 960))
    (loop $d
      (local.set $p (i32.sub (local.get $p) (i32.const 1)))
      (i32.store8 (local.get $p) (i32.add (i32.const 48) (i32.rem_u (local.get $n) (i32.const 10))))
      (local.set $n (i32.div_u (local.get $n) (i32.const 10)))
      (br_if $d (local.get $n)))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $p) (i32.const 960)))
        (call $emit (i32.load8_u (local.get $p)))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $l))))

  (func $emit_mem (param $addr i32) (param $len i32)
    (block $done
      (loop $l
        (br_if $done (i32.eqz (local.get $len)))
        (call $emit (i32.load8_u (local.get $addr)))
        (local.set $addr (i32.add (local.get $addr) (i32.const 1)))
        (local.set $len (i32.sub (local.get $len) (i32.const 1)))
        (br $l))))

  (func (export "_start")
    (local $ts i32) (local $te i32) (local $i i32) (local $c i32) (local $s i32) (local $ns i32)
    (local $k i32) (local $j i32) (local $best i32) (local $bs i32) (local $first i32) (local $max i32) (local $off i32)
    (call $read_all)
    ;; the text string
    (local.set $i (call $find (i32.const 256) (i32.const 6)))
    (if (i32.ge_s (local.get $i) (i32.const 0))
      (then
        (local.set $i (call $skip_sep (local.get $i)))
        (if (i32.eq (call $byte (local.get $i)) (i32.const 34))
          (then
            (local.set $ts (i32.add (local.get $i) (i32.const 1)))
            (local.set $te (local.get $ts))
            (block $end
              (loop $l
                (br_if $end (i32.ge_u (local.get $te) (global.get $inlen)))
                (local.set $c (call $byte (local.get $te)))
                (br_if $end (i32.eq (local.get $c) (i32.const 34)))
                (if (i32.eq (local.get $c) (i32.const 92))
                  (then (local.set $te (i32.add (local.get $te) (i32.const 2))))
                  (else (local.set $te (i32.add (local.get $te) (i32.const 1)))))
                (br $l)))
            (if (i32.gt_u (local.get $te) (global.get $inlen)) (then (local.set $te (global.get $inlen))))))))
    ;; max_sentences
    (local.set $max (i32.const 3))
    (local.set $i (call $find (i32.const 272) (i32.const 15)))
    (if (i32.ge_s (local.get $i) (i32.const 0))
      (then
        (local.set $i (call $skip_sep (local.get $i)))
        (local.set $max (i32.const 0))
        (block $end
          (loop $l
            (local.set $c (call $byte (local.get $i)))
            (br_if $end (i32.or (i32.lt_u (local.get $c) (i32.const 48)) (i32.gt_u (local.get $c) (i32.const 57))))
            (if (i32.lt_u (local.get $max) (i32.const 100000))
              (then (local.set $max (i32.add (i32.mul (local.get $max) (i32.const 10)) (i32.sub (local.get $c) (i32.const 48))))))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $l)))))
    (if (i32.gt_u (local.get $max) (i32.const 256)) (then (local.set $max (i32.const 256))))
    ;; word counts
    (drop (call $words (local.get $ts) (local.get $te) (i32.const 0)))
    ;; sentences and their scores
    (local.set $i (local.get $ts))
    (block $all
      (loop $sent
        (block $lead
          (loop $ws
            (br_if $lead (i32.ge_u (local.get $i) (local.get $te)))
            (local.set $c (call $byte (local.get $i)))
            (if (i32.or (i32.eq (local.get $c) (i32.const 32))
                        (i32.or (i32.eq (local.get $c) (i32.const 9)) (i32.or (i32.eq (local.get $c) (i32.const 10)) (i32.eq (local.get $c) (i32.const 13)))))
              (then (local.set $i (i32.add (local.get $i) (i32.const 1))) (br $ws)))
            (if (i32.eq (local.get $c) (i32.const 92))
              (then
                (local.set $c (call $byte (i32.add (local.get $i) (i32.const 1))))
                (if (i32.or (i32.eq (local.get $c) (i32.const 110)) (i32.or (i32.eq (local.get $c) (i32.const 116)) (i32.eq (local.get $c) (i32.const 114))))
                  (then (local.set $i (i32.add (local.get $i) (i32.const 2))) (br $ws)))))))
        (br_if $all (i32.ge_u (local.get $i) (local.get $te)))
        (local.set $s (local.get $i))
        (block $stop
          (loop $scan
            (br_if $stop (i32.ge_u (local.get $i) (local.get $te)))
            (local.set $c (call $byte (local.get $i)))
            (if (i32.eq (local.get $c) (i32.const 92))
              (then (local.set $i (i32.add (local.get $i) (call $esc (local.get $i)))) (br $scan)))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br_if $stop (i32.or (i32.eq (local.get $c) (i32.const 46))
                                 (i32.or (i32.eq (local.get $c) (i32.const 33)) (i32.eq (local.get $c) (i32.const 63)))))
            (br $scan)))
        (if (i32.gt_u (local.get $i) (local.get $te)) (then (local.set $i (local.get $te))))
        (if (i32.lt_u (local.get $ns) (i32.const 256))
          (then
            (local.set $off (i32.shl (local.get $ns) (i32.const 2)))
            (i32.store (i32.add (global.get $SSTART) (local.get $off)) (local.get $s))
            (i32.store (i32.add (global.get $SEND) (local.get $off)) (local.get $i))
            (i32.store (i32.add (global.get $SSCORE) (local.get $off)) (call $words (local.get $s) (local.get $i) (i32.const 1)))
            (i32.store (i32.add (global.get $SPICK) (local.get $off)) (i32.const 0))
            (local.set $ns (i32.add (local.get $ns) (i32.const 1)))))
        (br $sent)))
    ;; the best max sentences
    (local.set $k (i32.const 0))
    (block $picked
      (loop $pick
        (br_if $picked (i32.ge_u (local.get $k) (local.get $max)))
        (local.set $best (i32.const -1))
        (local.set $bs (i32.const -1))
        (local.set $j (i32.const 0))
        (block $jd
          (loop $jl
            (br_if $jd (i32.ge_u (local.get $j) (local.get $ns)))
            (local.set $off (i32.shl (local.get $j) (i32.const 2)))
            (if (i32.and (i32.eqz (i32.load (i32.add (global.get $SPICK) (local.get $off))))
                         (i32.gt_s (i32.load (i32.add (global.get $SSCORE) (local.get $off))) (local.get $bs)))
              (then
                (local.set $best (local.get $j))
                (local.set $bs (i32.load (i32.add (global.get $SSCORE) (local.get $off))))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $jl)))
        (br_if $picked (i32.lt_s (local.get $best) (i32.const 0)))
        (i32.store (i32.add (global.get $SPICK) (i32.shl (local.get $best) (i32.const 2))) (i32.const 1))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br $pick)))
    ;; the answer
    (call $emit_mem (i32.const 320) (i32.const 12))
    (local.set $first (i32.const 1))
    (local.set $j (i32.const 0))
    (block $d1
      (loop $l1
        (br_if $d1 (i32.ge_u (local.get $j) (local.get $ns)))
        (local.set $off (i32.shl (local.get $j) (i32.const 2)))
        (if (i32.load (i32.add (global.get $SPICK) (local.get $off)))
          (then
            (if (i32.eqz (local.get $first)) (then (call $emit (i32.const 32))))
            (call $emit_range (i32.load (i32.add (global.get $SSTART) (local.get $off)))
                              (i32.load (i32.add (global.get $SEND) (local.get $off))))
            (local.set $first (i32.const 0))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $l1)))
    (call $emit_mem (i32.const 352) (i32.const 15))
    (local.set $first (i32.const 1))
    (local.set $j (i32.const 0))
    (block $d2
      (loop $l2
        (br_if $d2 (i32.ge_u (local.get $j) (local.get $ns)))
        (if (i32.load (i32.add (global.get $SPICK) (i32.shl (local.get $j) (i32.const 2))))
          (then
            (if (i32.eqz (local.get $first)) (then (call $emit (i32.const 44))))
            (call $emit_num (local.get $j))
            (local.set $first (i32.const 0))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $l2)))
    (call $emit_mem (i32.const 384) (i32.const 10))
    (call $emit_num (local.get $ns))
    (call $emit (i32.const 125))
    ;; write it all
    (local.set $i (i32.const 0))
    (block $wd
      (loop $wl
        (br_if $wd (i32.ge_u (local.get $i) (global.get $olen)))
        (i32.store (i32.const 0) (i32.add (global.get $OUT) (local.get $i)))
        (i32.store (i32.const 4) (i32.sub (global.get $olen) (local.get $i)))
        (br_if $wd (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
        (br_if $wd (i32.eqz (i32.load (i32.const 8))))
        (local.set $i (i32.add (local.get $i) (i32.load (i32.const 8))))
        (br $wl))))
)
