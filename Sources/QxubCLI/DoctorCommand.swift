import ArgumentParser
import QxubClient
import QxubProtocol
import QxubSystem

extension QxubCommand {
    /// `qxub doctor [--platform NAME]`: what users cannot see, measured.
    package struct Doctor: ParsableCommand {
        package static let configuration = CommandConfiguration(
            commandName: "doctor",
            abstract:
                "Check the connection to a platform: master connection, login-shell cost, stray output, agent, scheduler."
        )
        @OptionGroup(title: "Where") var place: PlatformOptions
        package init() {}

        package func run() throws {
            try CLIFailure.catching { () throws(ClientError) -> Void in
                let platform = try place.platform()
                let settings = ClientSettings.fromProcess()
                func line(_ label: String, _ value: String) { print(label.padding(to: 22) + value) }
                func ms(_ seconds: Double) -> String {
                    let value = seconds * 1000
                    return value < 10
                        ? String(Int((value * 100).rounded()) / 100) + "."
                            + String(format2(Int((value * 100).rounded()) % 100)) + " ms"
                        : String(Int(value.rounded())) + " ms"
                }
                func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
                line(
                    "platform",
                    platform.remote.map { "\(platform.name) (ssh \($0.host))" } ?? "this machine (local agent)"
                )
                if let remote = platform.remote {
                    let launcher = SSHLauncher(platform: platform.name, remote: remote)
                    let controlPath = try launcher.controlPath()
                    line(
                        "control socket",
                        controlPath.map { "\($0) (\(FileSystem.exists($0) ? "present" : "none yet"))" }
                            ?? "managed by your ssh config"
                    )
                    let start = MonotonicClock.now()
                    try launcher.ensureMaster(controlPath: controlPath)
                    line("master connection", "live (\(ms(MonotonicClock.now() - start)) to check or open)")
                    var shell: [Double] = []
                    for _ in 0..<5 {
                        let begin = MonotonicClock.now()
                        _ = try? runCollectingOutput(
                            launcher.baseArguments(controlPath: controlPath) + [
                                "-o", "BatchMode=yes", remote.host, "true",
                            ],
                            timeout: 30
                        )
                        shell.append(MonotonicClock.now() - begin)
                    }
                    line("ssh host true", "\(ms(median(shell))) median of 5 (login shell start-up over the master)")
                    do throws(ClientError) {
                        let check = try AgentInstaller(platform: platform.name, remote: remote, settings: settings)
                            .checkDirectory()
                        let free =
                            check.freeKilobytes.map { $0 >= 1 << 20 ? "\($0 >> 20) GB free" : "\($0 >> 10) MB free" }
                            ?? "free space unknown"
                        line(
                            "agent directory",
                            "\(check.directory): "
                                + (check.executable
                                    ? "programs run there" : "programs CANNOT run there (a noexec filesystem?)")
                                + ", \(free)"
                        )
                        if !check.executable || (check.freeKilobytes ?? Int.max) < 50 << 10 {
                            line(
                                "",
                                "install the agent on another filesystem: `qxub agent install --platform \(platform.name) --dir /path/on/an/exec/filesystem`"
                            )
                        }
                    } catch {
                        line("agent directory", "not checked: \(error.message)")
                    }
                }
                let requests: AgentRequests
                let pings: [Double]
                do throws(ClientError) {
                    // The direct path: what the doctor measures is ssh, the login and the agent.
                    requests = try AgentRequests(
                        endpoint: AgentEndpoint(platform: platform, settings: settings, usesHolder: false)
                    )
                    pings = try requests.pings(10)
                } catch {
                    // Everything up to here still helps; say what is wrong with the agent and how to fix it.
                    line("agent", "NOT REACHABLE: \(error.message)")
                    if !error.hint.isEmpty { line("", error.hint) }
                    throw error
                }
                defer { requests.close() }
                // From spawning ssh (or the local agent) to the agent's hello: what every qxub command pays
                // before it can ask anything. (Subtracting the pings from the wall time also took away the
                // first ping's wait for the hello, leaving only the spawn.)
                let start = requests.connection.sessionStartSeconds.map(ms) ?? "unknown"
                let parts = platform.remote == nil ? "agent start + hello" : "ssh + login shell + agent start + hello"
                line("session start", "\(start) (\(parts), from spawning the process)")
                line("agent round trip", "\(ms(median(pings))) median of 10 pings over the open session")
                if let peer = requests.negotiation?.peer {
                    line("agent", "\(peer.software) on \(peer.hostname) (\(peer.platform))")
                    line(
                        "protocol",
                        "version \(requests.negotiation!.version), compression \(requests.negotiation!.compression ? "on" : "off")"
                    )
                    line("scheduler", peer.scheduler.isEmpty ? "unknown" : peer.scheduler)
                }
                // Where job state and output go (the platform's state_root, expanded by the agent), and the room
                // there: a dry run submits nothing.
                do throws(ClientError) {
                    let planned = try requests.dryRun(
                        JobSpec(name: "qxub-doctor", command: .shell("true"), workingDirectory: "")
                    )
                    line(
                        "job output",
                        FileSystem.directoryName(planned.stateDirectory) + "/ (script, records and output of each job)"
                    )
                    line("free space", planned.room.isEmpty ? "unknown (an older agent)" : planned.room)
                    if !planned.quota.isEmpty { line("quota", planned.quota) }
                } catch {
                    line("job output", "not checked: \(error.message)")
                }
                if let remote = platform.remote {
                    if remote.sessionPersist == 0 {
                        line("session holder", "off (session_persist: 0)")
                    } else if let holder = Session.holder(platform) {
                        line("session holder", "running (pid \(holder.pid), socket \(holder.path))")
                    } else {
                        line("session holder", "none (the next qxub for \(platform.name) starts one)")
                    }
                }
                if requests.strayBytes.isEmpty {
                    line("login files", "quiet (nothing printed before the agent)")
                } else {
                    line(
                        "login files",
                        "PRINTED \(requests.strayBytes.count) bytes before the agent: \(EscapedBytes(requests.strayBytes, limit: 120))"
                    )
                    line("", "guard them with `[ -t 1 ]` (sh/bash) or `if ($?prompt)` (csh/tcsh)")
                }
            }
        }
    }
}

private func format2(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }

extension String {
    func padding(to width: Int) -> String {
        count >= width ? self + " " : self + String(repeating: " ", count: width - count)
    }
}
