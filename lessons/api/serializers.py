from rest_framework import serializers

from lessons.models import Citation, Lesson, Paper, Topic


class PaperSerializer(serializers.ModelSerializer[Paper]):
    abs_url = serializers.CharField(read_only=True)
    pdf_url = serializers.CharField(read_only=True)

    class Meta:
        model = Paper
        fields = [
            "arxiv_id", "version", "title", "authors", "abstract", "published",
            "updated", "primary_category", "categories", "doi", "abs_url", "pdf_url",
            "fetched", "withdrawn", "refresh_failed", "refresh_error",
        ]  # fmt: skip


class CitationSerializer(serializers.ModelSerializer[Citation]):
    """``cited_version`` is the version the lesson names, null when it names
    none; ``version_seen`` is then the newest version when the site first
    saw the citation. ``newer_version`` and ``missing_version`` are what the
    lesson page warns of."""

    arxiv_id = serializers.CharField(source="paper.arxiv_id")
    title = serializers.CharField(source="paper.title")
    cited_version = serializers.IntegerField(source="version", allow_null=True)
    version_seen = serializers.IntegerField(allow_null=True, read_only=True)
    newer_version = serializers.IntegerField(allow_null=True, read_only=True)
    missing_version = serializers.IntegerField(allow_null=True, read_only=True)
    withdrawn = serializers.BooleanField(source="paper.withdrawn", read_only=True)
    abs_url = serializers.CharField(source="paper.abs_url")

    class Meta:
        model = Citation
        fields = [
            "arxiv_id", "cited_version", "version_seen", "newer_version",
            "missing_version", "withdrawn", "title", "abs_url",
        ]  # fmt: skip


class PricedLessonSerializer(serializers.ModelSerializer[Lesson]):
    """``price`` and ``asset`` say what a reader pays; null when free."""

    price = serializers.CharField(source="price_amount", allow_null=True)
    asset = serializers.SerializerMethodField()

    def get_asset(self, lesson: Lesson) -> str | None:
        return lesson.asset if lesson.price_amount is not None else None


class LessonSerializer(PricedLessonSerializer):
    """A lesson's metadata. Never its body: gated bodies are sold apart."""

    topic = serializers.CharField(source="topic.path")
    tags = serializers.SerializerMethodField()
    papers = serializers.SerializerMethodField()
    content_sha256 = serializers.CharField(source="body_sha256")
    url = serializers.CharField(source="get_absolute_url")

    class Meta:
        model = Lesson
        fields = [
            "slug", "title", "summary", "topic", "depth", "price", "asset", "gated",
            "tags", "papers", "created", "updated", "content_sha256", "url",
        ]  # fmt: skip

    def get_tags(self, lesson: Lesson) -> list[str]:
        return [row.tag.name for row in lesson.lesson_tags.all()]

    def get_papers(self, lesson: Lesson) -> list[str]:
        return [
            row.tag.name.removeprefix("arxiv:")
            for row in lesson.lesson_tags.all()
            if row.tag.name.startswith("arxiv:")
        ]


class LessonDetailSerializer(LessonSerializer):
    citations = CitationSerializer(many=True, read_only=True)

    class Meta(LessonSerializer.Meta):
        fields = [*LessonSerializer.Meta.fields, "citations"]


class LessonLinkSerializer(PricedLessonSerializer):
    topic = serializers.CharField(source="topic.path")
    url = serializers.CharField(source="get_absolute_url")

    class Meta:
        model = Lesson
        fields = ["slug", "title", "topic", "depth", "price", "asset", "gated", "url"]


class TopicSerializer(serializers.ModelSerializer[Topic]):
    # DRF moves declared fields off the class, so this does not shadow
    # Field.parent at run time.
    parent = serializers.CharField(  # type: ignore[assignment]
        source="parent_path", allow_null=True
    )
    lesson_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Topic
        fields = ["path", "name", "parent", "description", "lesson_count"]
