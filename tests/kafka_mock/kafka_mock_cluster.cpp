// A Kafka cluster for the tests, since no broker package exists here:
// librdkafka's built-in mock cluster, in a process of its own so that
// several sluice processes can join one consumer group on it.
//   kafka_mock_cluster BROKERS TOPIC:PARTITIONS...
// Prints the bootstrap servers on one line, then runs until SIGTERM/SIGINT.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <sys/prctl.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char **argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: kafka_mock_cluster BROKERS TOPIC:PARTITIONS...\n");
        return 2;
    }
    // Ends with the test that started it, even one that crashed.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() == 1) return 0;
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, nullptr); // before librdkafka starts its threads
    char error[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof error);
    if (!rk) {
        std::fprintf(stderr, "kafka_mock_cluster: %s\n", error);
        return 1;
    }
    const int brokers = std::atoi(argv[1]);
    rd_kafka_mock_cluster_t *cluster = rd_kafka_mock_cluster_new(rk, brokers);
    if (!cluster) {
        std::fprintf(stderr, "kafka_mock_cluster: cannot create the mock cluster\n");
        return 1;
    }
    for (int i = 2; i < argc; ++i) {
        std::string spec = argv[i];
        size_t colon = spec.find(':');
        std::string topic = spec.substr(0, colon);
        int partitions = colon == std::string::npos ? 1 : std::atoi(spec.c_str() + colon + 1);
        rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(cluster, topic.c_str(), partitions, brokers < 3 ? brokers : 3);
        if (err) {
            std::fprintf(stderr, "kafka_mock_cluster: topic %s: %s\n", topic.c_str(), rd_kafka_err2str(err));
            return 1;
        }
    }
    std::printf("bootstrap %s\n", rd_kafka_mock_cluster_bootstraps(cluster));
    std::fflush(stdout);
    int sig = 0;
    sigwait(&stop, &sig);
    rd_kafka_mock_cluster_destroy(cluster);
    rd_kafka_destroy(rk);
    rd_kafka_wait_destroyed(10000);
    return 0;
}
