// Parses JSON documents into Mesos 1.11's own protobuf messages, the way an operator's files reach the agent,
// but strictly: an unknown field, a wrong type, a bad enum value or a missing required field is a failure.
// (The agent itself ignores unknown fields, so a typo there silently drops a setting: this is stricter on purpose.)
//
// Run with the source launcher (classpath from test/deploy/mesos/pom.xml):
//   java -cp "$(cat .cache/mesos-checker.classpath)" test/deploy/mesos/MesosChecker.java < requests.json
// stdin: [{"id": "...", "type": "ResourceProviderInfo|CSIPluginInfo|Volume|DiskProfileMapping|Modules", "json": "..."}]
// stdout: [{"id": "...", "ok": true, "message": {canonical JSON, proto field names}} | {"id", "ok": false, "error"}]
import com.google.gson.Gson;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.google.protobuf.DescriptorProtos.DescriptorProto;
import com.google.protobuf.DescriptorProtos.FieldDescriptorProto;
import com.google.protobuf.DescriptorProtos.FieldDescriptorProto.Label;
import com.google.protobuf.DescriptorProtos.FieldDescriptorProto.Type;
import com.google.protobuf.DescriptorProtos.FileDescriptorProto;
import com.google.protobuf.DescriptorProtos.MessageOptions;
import com.google.protobuf.DescriptorProtos.OneofDescriptorProto;
import com.google.protobuf.Descriptors.FileDescriptor;
import com.google.protobuf.DynamicMessage;
import com.google.protobuf.Message;
import com.google.protobuf.util.JsonFormat;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.function.Supplier;

public final class MesosChecker {
  /** Messages not compiled into the Java jar, declared field for field as in their .proto files. */
  private static final FileDescriptor DYNAMIC = buildDynamic();

  /** The messages the agent reads each kind of file into, and where it does so (Mesos 1.11 sources). */
  private static final Map<String, Supplier<Message.Builder>> TYPES = Map.of(
      // src/resource_provider/daemon.cpp: every file of --resource_provider_config_dir.
      "ResourceProviderInfo", org.apache.mesos.Protos.ResourceProviderInfo::newBuilder,
      // src/slave/csi_server.cpp (CSIServer::create): every file of --csi_plugin_config_dir.
      "CSIPluginInfo", org.apache.mesos.Protos.CSIPluginInfo::newBuilder,
      // include/mesos/v1/mesos.proto: a task's ContainerInfo.volumes entry, as a framework sends it.
      "Volume", org.apache.mesos.v1.Protos.Volume::newBuilder,
      // src/resource_provider/storage/disk_profile.proto, read by the URI disk profile adaptor.
      "DiskProfileMapping", () -> DynamicMessage.newBuilder(DYNAMIC.findMessageTypeByName("DiskProfileMapping")),
      // include/mesos/module/module.proto: the --modules document.
      "Modules", () -> DynamicMessage.newBuilder(DYNAMIC.findMessageTypeByName("Modules")));

  private static FieldDescriptorProto field(String name, int number, Label label, Type type, String typeName) {
    FieldDescriptorProto.Builder f = FieldDescriptorProto.newBuilder().setName(name).setNumber(number).setLabel(label).setType(type);
    if (typeName != null) f.setTypeName(typeName);
    return f.build();
  }

  private static DescriptorProto mapEntry(String name, Type valueType, String valueTypeName) {
    return DescriptorProto.newBuilder()
        .setName(name)
        .addField(field("key", 1, Label.LABEL_OPTIONAL, Type.TYPE_STRING, null))
        .addField(field("value", 2, Label.LABEL_OPTIONAL, valueType, valueTypeName))
        .setOptions(MessageOptions.newBuilder().setMapEntry(true))
        .build();
  }

  private static FileDescriptor buildDynamic() {
    final Label opt = Label.LABEL_OPTIONAL, rep = Label.LABEL_REPEATED;
    final String capability = ".mesos.Volume.Source.CSIVolume.VolumeCapability";
    DescriptorProto resourceProvider = DescriptorProto.newBuilder()
        .setName("ResourceProvider")
        .addField(field("type", 1, opt, Type.TYPE_STRING, null))
        .addField(field("name", 2, opt, Type.TYPE_STRING, null))
        .build();
    DescriptorProto rpSelector = DescriptorProto.newBuilder()
        .setName("ResourceProviderSelector")
        .addNestedType(resourceProvider)
        .addField(field("resource_providers", 1, rep, Type.TYPE_MESSAGE,
            ".mesos.resource_provider.DiskProfileMapping.CSIManifest.ResourceProviderSelector.ResourceProvider"))
        .build();
    DescriptorProto typeSelector = DescriptorProto.newBuilder()
        .setName("CSIPluginTypeSelector")
        .addField(field("plugin_type", 1, opt, Type.TYPE_STRING, null))
        .build();
    String manifest = ".mesos.resource_provider.DiskProfileMapping.CSIManifest";
    DescriptorProto csiManifest = DescriptorProto.newBuilder()
        .setName("CSIManifest")
        .addNestedType(rpSelector)
        .addNestedType(typeSelector)
        .addNestedType(mapEntry("CreateParametersEntry", Type.TYPE_STRING, null))
        .addOneofDecl(OneofDescriptorProto.newBuilder().setName("selector"))
        .addField(field("volume_capabilities", 1, opt, Type.TYPE_MESSAGE, capability))
        .addField(field("create_parameters", 2, rep, Type.TYPE_MESSAGE, manifest + ".CreateParametersEntry"))
        .addField(field("resource_provider_selector", 3, opt, Type.TYPE_MESSAGE, manifest + ".ResourceProviderSelector").toBuilder().setOneofIndex(0))
        .addField(field("csi_plugin_type_selector", 4, opt, Type.TYPE_MESSAGE, manifest + ".CSIPluginTypeSelector").toBuilder().setOneofIndex(0))
        .build();
    DescriptorProto mapping = DescriptorProto.newBuilder()
        .setName("DiskProfileMapping")
        .addNestedType(csiManifest)
        .addNestedType(mapEntry("ProfileMatrixEntry", Type.TYPE_MESSAGE, manifest))
        .addField(field("profile_matrix", 1, rep, Type.TYPE_MESSAGE, ".mesos.resource_provider.DiskProfileMapping.ProfileMatrixEntry"))
        .build();
    DescriptorProto module = DescriptorProto.newBuilder()
        .setName("Module")
        .addField(field("name", 1, opt, Type.TYPE_STRING, null))
        .addField(field("parameters", 2, rep, Type.TYPE_MESSAGE, ".mesos.Parameter"))
        .build();
    DescriptorProto library = DescriptorProto.newBuilder()
        .setName("Library")
        .addNestedType(module)
        .addField(field("file", 1, opt, Type.TYPE_STRING, null))
        .addField(field("name", 2, opt, Type.TYPE_STRING, null))
        .addField(field("modules", 3, rep, Type.TYPE_MESSAGE, ".mesos.resource_provider.Modules.Library.Module"))
        .build();
    DescriptorProto modules = DescriptorProto.newBuilder()
        .setName("Modules")
        .addNestedType(library)
        .addField(field("libraries", 1, rep, Type.TYPE_MESSAGE, ".mesos.resource_provider.Modules.Library"))
        .build();
    FileDescriptorProto file = FileDescriptorProto.newBuilder()
        .setName("rexcsi/mesos_dynamic.proto")
        .setPackage("mesos.resource_provider")
        .setSyntax("proto3")
        .addDependency(org.apache.mesos.Protos.getDescriptor().getName())
        .addMessageType(mapping)
        .addMessageType(modules)
        .build();
    try {
      return FileDescriptor.buildFrom(file, new FileDescriptor[] {org.apache.mesos.Protos.getDescriptor()});
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  private static JsonObject check(JsonObject request) {
    JsonObject result = new JsonObject();
    result.addProperty("id", request.get("id").getAsString());
    String type = request.get("type").getAsString();
    Supplier<Message.Builder> builder = TYPES.get(type);
    if (builder == null) throw new IllegalArgumentException("unknown message type " + type);
    try {
      Message.Builder b = builder.get();
      JsonFormat.parser().merge(request.get("json").getAsString(), b); // unknown fields are errors by default
      Message message = b.build(); // throws on a missing required field, as stout's parse does
      result.addProperty("ok", true);
      String canonical = JsonFormat.printer().preservingProtoFieldNames().usingTypeRegistry(JsonFormat.TypeRegistry.getEmptyTypeRegistry()).print(message);
      result.add("message", new JsonParser().parse(canonical));
    } catch (Exception e) {
      result.addProperty("ok", false);
      result.addProperty("error", e.getClass().getSimpleName() + ": " + e.getMessage());
    }
    return result;
  }

  public static void main(String[] args) throws Exception {
    JsonElement input = new JsonParser().parse(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    JsonArray out = new JsonArray();
    for (JsonElement request : input.getAsJsonArray()) out.add(check(request.getAsJsonObject()));
    System.out.println(new Gson().toJson(out));
  }
}
