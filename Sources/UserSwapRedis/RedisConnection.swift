import CHiredis
import Glibc
import UserSwap

/// What went wrong talking to Redis, before it becomes a `SwapError` (`RedisFailure+SwapError`).
enum RedisFailure: Error, Sendable {
    /// No usable connection: refused, reset, closed by the server, or no answer in time. The
    /// connection is dead afterwards. `connecting` says it never formed.
    case connection(String, errno: Int32, timedOut: Bool, connecting: Bool)
    /// The server answered with an error reply (`-OOM …`, `-NOAUTH …`, `-MOVED …`).
    case server(String)
    /// The server answered, but not with what this device wrote: a missing value, a wrong
    /// length, a stale or corrupt page. Never retried.
    case data(String)
    /// Every pooled connection stayed busy past the command timeout.
    case poolExhausted(Int)

    /// Worth another attempt on a fresh connection: the server may be restarting or a proxy may
    /// have dropped an idle socket. A timeout is not retried: the server did not answer within
    /// the time we promised the caller, and trying again would double the wait.
    var isRetriable: Bool {
        switch self {
        case .connection(_, _, let timedOut, _): !timedOut
        case .server(let message): message.hasPrefix("LOADING") || message.hasPrefix("TRYAGAIN")
        case .data, .poolExhausted: false
        }
    }
}

/// The arguments of one Redis command, binary safe: short ones (the name, keys, numbers) copied
/// into an arena, long ones (page values) referenced where they are, so the caller keeps those
/// alive until the command is sent (hiredis copies every argument into its output buffer when
/// the command is appended).
struct RedisCommand {
    private var arena: [UInt8] = []
    /// Per argument: its offset in the arena, or -1 when it is external.
    private var offsets: [Int] = []
    private var lengths: [Int] = []
    private var externals: [UnsafeRawPointer?] = []

    init(_ name: String) { append(name) }

    var argumentCount: Int { lengths.count }

    mutating func append(_ text: String) {
        let start = arena.count
        arena.append(contentsOf: text.utf8)
        add(offset: start, length: arena.count - start)
    }

    /// Appends the key of `page`.
    mutating func appendKey(of page: Int, format: RedisPageFormat) {
        let start = arena.count
        format.appendKey(of: page, to: &arena)
        add(offset: start, length: arena.count - start)
    }

    /// Appends `bytes` by reference: they must stay valid until the command has been appended to
    /// a connection.
    mutating func appendExternal(_ bytes: UnsafeRawBufferPointer) {
        offsets.append(-1)
        lengths.append(bytes.count)
        externals.append(bytes.baseAddress)
    }

    private mutating func add(offset: Int, length: Int) {
        offsets.append(offset)
        lengths.append(length)
        externals.append(nil)
    }

    /// Calls `body` with hiredis's `argc, argv, argvlen`, valid only during the call.
    func withArgv<R>(_ body: (Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> R) -> R {
        arena.withUnsafeBytes { arena in
            var argv = [UnsafePointer<CChar>?]()
            argv.reserveCapacity(offsets.count)
            for i in offsets.indices {
                // The arena is never empty (the command name is in it) and stays alive for the
                // call; externals are the caller's, kept alive by the caller.
                let base = externals[i] ?? UnsafeRawPointer(arena.baseAddress! + offsets[i])
                argv.append(base.assumingMemoryBound(to: CChar.self))
            }
            return argv.withUnsafeMutableBufferPointer { argv in
                lengths.withUnsafeBufferPointer { lengths in
                    body(Int32(argv.count), argv.baseAddress!, lengths.baseAddress!)
                }
            }
        }
    }
}

/// A borrowed view of a hiredis reply (the reply itself or one of its elements); valid while the
/// `_RedisReply` that owns it lives.
struct RedisReplyView {
    let raw: UnsafePointer<redisReply>

    var type: Int32 { raw.pointee.type }
    var isNil: Bool { type == REDIS_REPLY_NIL }
    var isError: Bool { type == REDIS_REPLY_ERROR }
    var integer: Int64 { Int64(raw.pointee.integer) }

    /// The bytes of a string, status or error reply.
    var bytes: UnsafeRawBufferPointer {
        guard let s = raw.pointee.str else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: s, count: raw.pointee.len)
    }

    var text: String { String(decoding: bytes, as: UTF8.self) }

    var elementCount: Int { type == REDIS_REPLY_ARRAY ? raw.pointee.elements : 0 }

    func element(_ i: Int) -> RedisReplyView {
        require(i >= 0 && i < elementCount, "reply element \(i) of \(elementCount)")
        // In bounds (checked above); hiredis never stores a null element in an array.
        return RedisReplyView(raw: UnsafePointer(raw.pointee.element[i]!))
    }

    /// Throws the server's error if this is an error reply.
    func checkNotError() throws(RedisFailure) {
        if isError { throw .server(text) }
    }

    /// Throws unless this is the status reply `OK`.
    func checkOK(_ what: String) throws(RedisFailure) {
        try checkNotError()
        guard type == REDIS_REPLY_STATUS, text == "OK" else {
            throw .data("\(what) answered '\(text)' (reply type \(type)) instead of OK")
        }
    }
}

/// An owned hiredis reply, freed when it goes away.
struct _RedisReply: ~Copyable {
    private let raw: UnsafeMutablePointer<redisReply>

    /// Takes ownership of what `redisCommandArgv` or `redisGetReply` returned.
    init(taking pointer: UnsafeMutableRawPointer) {
        raw = pointer.assumingMemoryBound(to: redisReply.self)
    }

    deinit { freeReplyObject(raw) }

    var view: RedisReplyView { RedisReplyView(raw: UnsafePointer(raw)) }
}

/// One connection to a Redis server (a hiredis `redisContext`), freed when it goes away.
///
/// A class rather than a `~Copyable` struct because the pool keeps idle connections in an array.
/// hiredis contexts are not thread safe: the pool gives a connection to one thread at a time,
/// and once a call fails at the connection level the context is dead (`isBroken`) and is freed
/// instead of going back to the pool.
final class _RedisConnection {
    private let context: UnsafeMutablePointer<redisContext>
    /// Set by the first connection-level failure; the pool then drops the connection.
    private(set) var isBroken = false
    private let endpoint: RedisEndpoint

    /// Connects, sets the command timeout, authenticates and selects the database.
    init(_ endpoint: RedisEndpoint) throws(RedisFailure) {
        self.endpoint = endpoint
        let connected =
            endpoint.socketPath.map { redisConnectUnixWithTimeout($0, Self.timeval(endpoint.connectTimeout)) }
            ?? redisConnectWithTimeout(endpoint.host, Int32(endpoint.port), Self.timeval(endpoint.connectTimeout))
        guard let c = connected else {
            throw .connection("cannot allocate a hiredis context", errno: ENOMEM, timedOut: false, connecting: true)
        }
        if c.pointee.err != 0 {
            let failure = Self.failure(of: c, errno: errno, connecting: true, timeout: endpoint.connectTimeout)
            redisFree(c)
            throw failure
        }
        context = c
        // Both directions of every later command are bounded (SO_RCVTIMEO and SO_SNDTIMEO):
        // a server that stops answering costs one timeout, never a hang.
        guard redisSetTimeout(c, Self.timeval(endpoint.commandTimeout)) == REDIS_OK else {
            throw Self.failure(of: c, errno: errno, connecting: true, timeout: endpoint.commandTimeout)
        }
        // TCP only: on a unix socket hiredis would record the failed setsockopt as the
        // context's error.
        if endpoint.socketPath == nil { _ = redisEnableKeepAlive(c) }
        if let password = endpoint.password {
            var auth = RedisCommand("AUTH")
            if let username = endpoint.username { auth.append(username) }
            auth.append(password)
            let reply = try command(auth)
            try reply.view.checkOK("AUTH")
        }
        if endpoint.database != 0 {
            var select = RedisCommand("SELECT")
            select.append(String(endpoint.database))
            let reply = try command(select)
            try reply.view.checkOK("SELECT \(endpoint.database)")
        }
    }

    deinit { redisFree(context) }

    /// Sends one command and waits for its reply (an error reply is a reply, not a failure).
    func command(_ command: RedisCommand) throws(RedisFailure) -> _RedisReply {
        require(!isBroken, "a broken Redis connection was used again")
        let reply = command.withArgv { argc, argv, lengths in redisCommandArgv(context, argc, argv, lengths) }
        guard let reply else { throw fail() }
        return _RedisReply(taking: reply)
    }

    /// Queues a command in the output buffer without sending it (pipelining): the next
    /// `nextReply()` sends everything queued, then reads one reply.
    func append(_ command: RedisCommand) throws(RedisFailure) {
        require(!isBroken, "a broken Redis connection was used again")
        let status = command.withArgv { argc, argv, lengths in redisAppendCommandArgv(context, argc, argv, lengths) }
        guard status == REDIS_OK else { throw fail() }
    }

    /// The reply to the oldest command appended and not yet answered.
    func nextReply() throws(RedisFailure) -> _RedisReply {
        require(!isBroken, "a broken Redis connection was used again")
        var reply: UnsafeMutableRawPointer?
        guard redisGetReply(context, &reply) == REDIS_OK, let reply else { throw fail() }
        return _RedisReply(taking: reply)
    }

    /// Sends `commands` in one pipeline and hands each reply to `each`, in order. Every reply is
    /// read even when `each` throws for one (the connection stays in step); the first error is
    /// rethrown at the end.
    func pipeline(_ commands: [RedisCommand], each: (Int, RedisReplyView) throws(RedisFailure) -> Void) throws(RedisFailure) {
        for c in commands { try append(c) }
        var first: RedisFailure?
        for i in commands.indices {
            let reply = try nextReply()
            do { try each(i, reply.view) } catch { if first == nil { first = error } }
        }
        if let first { throw first }
    }

    /// Marks the connection dead and describes why.
    private func fail() -> RedisFailure {
        let saved = errno
        isBroken = true
        return Self.failure(of: context, errno: saved, connecting: false, timeout: endpoint.commandTimeout)
    }

    private static func failure(
        of c: UnsafeMutablePointer<redisContext>, errno saved: Int32, connecting: Bool,
        timeout: Duration
    ) -> RedisFailure {
        let text = withUnsafeBytes(of: c.pointee.errstr) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let kind = c.pointee.err
        var code = saved
        var timedOut = false
        if kind == REDIS_ERR_IO && (saved == EAGAIN || saved == EWOULDBLOCK || saved == ETIMEDOUT || saved == EINPROGRESS) {
            timedOut = true
            code = ETIMEDOUT
        } else if kind == REDIS_ERR_EOF {
            code = ECONNRESET
        } else if code == 0 {
            code = EIO
        }
        let detail = timedOut ? "no answer within \(timeout) (\(text))" : (text.isEmpty ? "hiredis error \(kind)" : text)
        return .connection(detail, errno: code, timedOut: timedOut, connecting: connecting)
    }

    private static func timeval(_ d: Duration) -> Glibc.timeval {
        let (seconds, attoseconds) = d.components
        return Glibc.timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
    }
}
