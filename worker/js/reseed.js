// Replaces Math.random in a worker forked from the fork server (see Booted::reseed): xoshiro128**
// over the four 32-bit seed words in `seed` ("a,b,c,d", not all zero), two outputs per 53-bit
// double in [0, 1). Compiled once, as the body of a function of `seed`, before the server forks.
'use strict';
let [a, b, c, d] = seed.split(',').map((word) => Number(word) | 0);
const rotl = (x, k) => (x << k) | (x >>> (32 - k));
const next = () => {
  const result = Math.imul(rotl(Math.imul(b, 5), 7), 9) >>> 0;
  const t = b << 9;
  c ^= a;
  d ^= b;
  b ^= c;
  a ^= d;
  c ^= t;
  d = rotl(d, 11);
  return result;
};
const random = {
  random() {
    return ((next() >>> 5) * 67108864 + (next() >>> 6)) / 9007199254740992;
  },
}.random;
Object.defineProperty(Math, 'random', {
  value: random,
  writable: true,
  enumerable: false,
  configurable: true,
});
