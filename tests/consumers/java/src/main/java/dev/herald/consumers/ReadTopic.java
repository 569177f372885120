package dev.herald.consumers;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.cloudevents.CloudEvent;
import io.cloudevents.kafka.CloudEventDeserializer;
import java.time.Duration;
import java.time.format.DateTimeFormatter;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.RecordDeserializationException;
import org.apache.kafka.common.serialization.StringDeserializer;

/**
 * Reads a topic from its beginning to the end offsets it had at start with the Java CloudEvents
 * SDK's Kafka deserializer, and prints one JSON line per record: partition, offset, key, the
 * CloudEvent's attributes (id, type, source, subject, time, datacontenttype, dataschema), its
 * extensions and its data.
 *
 * <p>Usage: {@code java -jar herald-java-consumer.jar BOOTSTRAP TOPIC [TIMEOUT_S]}. Exit 0 once
 * every record was read; 1, with the partition and offset on stderr, at the first record the SDK
 * cannot read as a CloudEvent; 2 when the end was not reached within TIMEOUT_S (60 by default);
 * 64 on wrong arguments. It commits nothing and joins no consumer group.
 */
public final class ReadTopic {
    private ReadTopic() {}

    public static void main(String[] args) throws Exception {
        if (args.length < 2 || args.length > 3) {
            System.err.println("usage: ReadTopic BOOTSTRAP TOPIC [TIMEOUT_S]");
            System.exit(64);
        }
        // The Kafka client's INFO lines would bury the one line that says why a record failed.
        System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
        String bootstrap = args[0];
        String topic = args[1];
        Duration timeout = Duration.ofSeconds(args.length == 3 ? Long.parseLong(args[2]) : 60);
        long deadline = System.nanoTime() + timeout.toNanos();

        // What a consumer of the domain topic configures (docs/contracts.md, "Consuming").
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class);
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, CloudEventDeserializer.class);
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);

        ObjectMapper json = new ObjectMapper();
        try (KafkaConsumer<String, CloudEvent> consumer = new KafkaConsumer<>(props)) {
            List<PartitionInfo> infos = consumer.partitionsFor(topic, timeout);
            if (infos == null || infos.isEmpty()) {
                fail(2, "topic " + topic + " has no partitions (does it exist?)");
            }
            List<TopicPartition> partitions =
                    infos.stream().map(p -> new TopicPartition(topic, p.partition())).toList();
            consumer.assign(partitions);
            consumer.seekToBeginning(partitions);
            Map<TopicPartition, Long> ends = consumer.endOffsets(partitions, timeout);
            while (partitions.stream().anyMatch(tp -> consumer.position(tp) < ends.get(tp))) {
                if (System.nanoTime() > deadline) {
                    fail(2, "the end offsets " + ends + " were not reached within " + timeout);
                }
                ConsumerRecords<String, CloudEvent> records;
                try {
                    records = consumer.poll(Duration.ofMillis(500));
                } catch (RecordDeserializationException e) {
                    fail(1, "the CloudEvents SDK cannot read the record at " + e.topicPartition()
                            + " offset " + e.offset() + ": " + e.getCause());
                    return;
                }
                for (ConsumerRecord<String, CloudEvent> record : records) {
                    System.out.println(json.writeValueAsString(line(json, record)));
                }
            }
        }
    }

    private static ObjectNode line(ObjectMapper json, ConsumerRecord<String, CloudEvent> record)
            throws java.io.IOException {
        CloudEvent event = record.value();
        ObjectNode line = json.createObjectNode();
        line.put("partition", record.partition());
        line.put("offset", record.offset());
        line.put("key", record.key());
        line.put("specversion", event.getSpecVersion().toString());
        line.put("id", event.getId());
        line.put("type", event.getType());
        line.put("source", event.getSource().toString());
        line.put("subject", event.getSubject());
        line.put(
                "time",
                event.getTime() == null
                        ? null
                        : event.getTime().format(DateTimeFormatter.ISO_OFFSET_DATE_TIME));
        line.put("datacontenttype", event.getDataContentType());
        line.put("dataschema", event.getDataSchema() == null ? null : event.getDataSchema().toString());
        ObjectNode extensions = line.putObject("extensions");
        for (String name : event.getExtensionNames()) {
            Object value = event.getExtension(name);
            if (value instanceof Boolean b) {
                extensions.put(name, b);
            } else if (value instanceof Integer i) {
                extensions.put(name, i);
            } else {
                extensions.put(name, String.valueOf(value));
            }
        }
        if (event.getData() == null) {
            line.putNull("data");
        } else {
            line.set("data", json.readTree(event.getData().toBytes()));
        }
        return line;
    }

    private static void fail(int status, String message) {
        System.err.println("ReadTopic: " + message);
        System.out.flush();
        System.exit(status);
    }
}
