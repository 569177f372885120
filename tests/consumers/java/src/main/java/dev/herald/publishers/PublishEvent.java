package dev.herald.publishers;

import io.cloudevents.CloudEvent;
import io.cloudevents.core.builder.CloudEventBuilder;
import io.cloudevents.core.message.Encoding;
import io.cloudevents.jackson.JsonFormat;
import io.cloudevents.kafka.CloudEventSerializer;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.Properties;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * Publishes one CloudEvent with the Java CloudEvents SDK's Kafka serializer, as another platform's
 * service would publish its own events for Herald to deliver (docs/contracts.md, "Publishing your
 * own CloudEvents").
 *
 * <p>Usage: {@code java -cp herald-java-consumer.jar dev.herald.publishers.PublishEvent BOOTSTRAP
 * TOPIC MODE KEY ID SOURCE TYPE SUBJECT DATA_JSON}, MODE {@code structured} (the JSON event format,
 * {@code content-type: application/cloudevents+json}) or {@code binary} (the serializer's
 * default: {@code ce_} headers, the data as the value). Exit 0 once the broker acknowledged it; 64
 * on wrong arguments.
 */
public final class PublishEvent {
    private PublishEvent() {}

    public static void main(String[] args) throws Exception {
        if (args.length != 9 || !(args[2].equals("structured") || args[2].equals("binary"))) {
            System.err.println(
                    "usage: PublishEvent BOOTSTRAP TOPIC structured|binary KEY ID SOURCE TYPE"
                            + " SUBJECT DATA_JSON");
            System.exit(64);
        }
        System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class);
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, CloudEventSerializer.class);
        if (args[2].equals("structured")) {
            props.put(CloudEventSerializer.ENCODING_CONFIG, Encoding.STRUCTURED);
            props.put(CloudEventSerializer.EVENT_FORMAT_CONFIG, JsonFormat.CONTENT_TYPE);
        }
        CloudEvent event =
                CloudEventBuilder.v1()
                        .withId(args[4])
                        .withSource(URI.create(args[5]))
                        .withType(args[6])
                        .withSubject(args[7])
                        .withTime(OffsetDateTime.now(ZoneOffset.UTC))
                        .withData("application/json", args[8].getBytes(StandardCharsets.UTF_8))
                        .build();
        try (KafkaProducer<String, CloudEvent> producer = new KafkaProducer<>(props)) {
            producer.send(new ProducerRecord<>(args[1], args[3], event)).get();
        }
    }
}
