import QxubScheduler
import QxubSystem
import Testing

@Suite("what finished jobs used: the job log's usage record, qstat -xf and sacct")
struct JobUsageTests {
    @Test("the job script's usage lines: cpus, memory peak, the children's user plus system time")
    func jobLog() {
        let log = """
            qxub 1.0: job t1 (pbspro) on n1, started today
            usage:          cpus=4 memory_peak=2147483648
            cpu times:      0m0.010s 0m0.004s
            1m2.500s 0m7.500s
            finished:       today, exit status 0
            """
        #expect(
            JobUsage.fromJobLog(log)
                == JobUsage(cpuSeconds: 70, memoryPeakBytes: 2_147_483_648, cpus: 4)
        )
    }

    @Test(
        "unknown values are '-' in the record and nil when parsed; a log without a record says nothing",
        arguments: [
            (
                "usage:          cpus=- memory_peak=-\ncpu times:      0m0.000s 0m0.000s\n0m1,250s 0m0,250s\n",
                JobUsage(cpuSeconds: 1.5)
            ),
            ("qxub 1.0: job t1 (local) on vm\nfinished:       today, exit status 0\n", JobUsage()),
            ("usage:          cpus=2 memory_peak=-\ncpu times:      0m0.000s 0m0.000s\n", JobUsage(cpus: 2)),
        ]
    )
    func jobLogPartial(log: String, expected: JobUsage) {
        #expect(JobUsage.fromJobLog(log) == expected)
    }

    @Test("qstat -xf of a real PBS Pro job (recorded): resources_used.walltime, cput, mem, ncpus")
    func pbs() throws {
        let text = try #require(FileSystem.readText(Fixtures.directory + "/pbs-real/hoff-qstat-f-running.stdout"))
        #expect(
            JobUsage.fromPBS(text)
                == JobUsage(walltimeSeconds: 1, cpuSeconds: 0, memoryPeakBytes: 6316 * 1024, cpus: 1)
        )
        let hours =
            "    resources_used.cput = 12:30:05\n    resources_used.walltime = 100:00:00\n"
            + "    resources_used.mem = 3gb\n    resources_used.ncpus = 48\n"
        let usage = JobUsage.fromPBS(hours)
        #expect(usage == JobUsage(walltimeSeconds: 360_000, cpuSeconds: 45_005, memoryPeakBytes: 3 << 30, cpus: 48))
        #expect(JobUsage.fromPBS("Job Id: 1.pbs\n    job_state = F\n").isEmpty, "PBS history kept no usage")
    }

    @Test("sacct -P: the job's elapsed, TotalCPU and cpus; the largest MaxRSS over its steps")
    func sacct() {
        let text = """
            123|01:00:00|1-02:03:04|  |8
            123.batch|01:00:00|01:00:00|1500M|8
            123.extern|01:00:00|00:00.002|2G|8
            """
        let usage = JobUsage.fromSacct(text)
        #expect(usage.walltimeSeconds == 3600)
        #expect(usage.cpuSeconds == 93_784, "1 day, 2 h, 3 min, 4 s")
        #expect(usage.memoryPeakBytes == 2 << 30)
        #expect(usage.cpus == 8)
        #expect(JobUsage.fromSacct("124|00:10:00|05:00.500||2\n").cpuSeconds == 300.5)
    }

    @Test("cpu efficiency is cpu time over walltime times cpus, and unknown when any of them is")
    func efficiency() {
        #expect(JobUsage(walltimeSeconds: 100, cpuSeconds: 200, cpus: 4).cpuEfficiency == 0.5)
        #expect(JobUsage(walltimeSeconds: 100, cpuSeconds: 200).cpuEfficiency == nil)
        #expect(JobUsage(walltimeSeconds: 0, cpuSeconds: 0, cpus: 1).cpuEfficiency == nil)
    }
}
