/// Far memory on Redis: a swap backend that keeps pages in a Redis server, through libhiredis.
public enum UserSwapRedis {}
