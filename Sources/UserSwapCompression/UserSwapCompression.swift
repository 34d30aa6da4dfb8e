/// The compressed tier (UserSwap's zswap): a pool of compressed pages in front of a swap
/// device, built on Debian's liblz4 and libzstd.
public enum UserSwapCompression {}
